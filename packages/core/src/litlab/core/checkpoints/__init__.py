"""Checkpoints: reading them safely, checking them against a model, finding earlier runs'.

- :mod:`~litlab.core.checkpoints.checks`: read a ``.ckpt`` (weights-only, memory-mapped), stamp
  it with the litlab version, and check it against the model a config builds.
- :mod:`~litlab.core.checkpoints.state_dicts`: how a saved state_dict differs from a model's.
- :mod:`~litlab.core.checkpoints.run_lookup`: the ``best``/``last`` checkpoint of an
  experiment's newest run, and the config a checkpoint was trained with.
- :mod:`~litlab.core.checkpoints.class_import`: classes by the dotted path a config or
  checkpoint records.
- :mod:`~litlab.core.checkpoints.task_loading`: any task back from its checkpoint.
- :mod:`~litlab.core.checkpoints.upgrade`: checkpoints and run configs of an earlier litlab
  (renamed task arguments, moved classes), read as this version writes them.
"""
