"""Tasks: what a model's outputs mean. Each task (one module here, registered by its name) gives its class
names, targets, loss, metrics, pictures and prediction rows (and, where its model is not a classifier, its
model); the one loop uses them. Adding a task: a module here, and its import below."""

from trainers.tasks import classify, localize, multilabel, ovr, segment  # noqa: F401  (importing a task registers it)
from trainers.tasks.registry import get_task, list_tasks, register_task, task_options
from trainers.tasks.task import Place, Task

__all__ = ["Place", "Task", "get_task", "list_tasks", "register_task", "task_options"]
