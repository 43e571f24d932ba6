"""The study and its rules: create and run it to N trials (run), one trial (objective), crash-safe retries
(resume), how trials are sampled and pruned (strategy), the weights kept (keep), copying a study elsewhere (copy).

Its modules are imported one by one: the light ones (keep) must not bring torch along."""
