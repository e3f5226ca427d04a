"""Task's weight-decay groups under FSDP: FSDP (use_orig_params, Lightning's default) replaces
every parameter's data by a 1-d view of the rank's shard before configure_optimizers runs, so
"matrices decay, 1-d tensors do not" must read the shapes the model was built with."""

from torch import nn

from litlab.core.task import Task


class Tiny(Task):
    def __init__(self) -> None:
        super().__init__(lr=0.1, weight_decay=0.05)
        self.linear = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)


def flatten_like_fsdp(task: Task) -> None:
    # What FSDP's sharded views look like: same parameter objects, 1-d data.
    for parameter in task.parameters():
        parameter.data = parameter.data.flatten()


def decayed(task: Task) -> set[int]:
    groups = task.configure_optimizers().param_groups
    return {id(p) for group in groups if group["weight_decay"] > 0 for p in group["params"]}


def test_shapes_as_built_decide_the_groups_after_flattening():
    task = Tiny()
    task.configure_model()  # Lightning calls it before the strategy wraps the model
    flatten_like_fsdp(task)
    assert decayed(task) == {id(task.linear.weight)}


def test_flattened_shapes_alone_would_exempt_every_matrix():
    task = Tiny()
    flatten_like_fsdp(task)
    assert decayed(task) == set()


def test_without_a_trainer_the_current_shapes_decide():
    task = Tiny()
    assert decayed(task) == {id(task.linear.weight)}
