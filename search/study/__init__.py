"""The study and its rules: run it to N trials (run: the loop; options: the run's options and its --jobs
workers; checks: the space, weights and data checked before any work), one trial (objective), crash-safe
retries (resume), how trials are sampled and pruned (strategy, by name: registry), the weights kept (keep),
copying a study elsewhere (copy).

Its modules are imported one by one: the light ones (keep) must not bring torch along."""

from search.study import strategy  # noqa: F401  (importing the samplers and pruners registers them)
