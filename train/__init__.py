"""Training of GENRE-CMR (``genre train``).

* :mod:`train.config`: :class:`~train.config.TrainConfig`, the paper's recipe as defaults;
* :mod:`train.run`: data split, datasets, process group, resumption; :func:`~train.run.run_training`;
* :mod:`train.trainer`: the loop (generator and discriminator steps, validation, epochs);
* :mod:`train.objective`: per-cascade losses, CoV weighting, SDA bank, finite-gradient RSS;
* :mod:`train.training_state`: training-state checkpoints for exact resumption;
* :mod:`train.distributed`: DDP setup from ``torchrun``'s environment and the collectives used;
* :mod:`train.records`, :mod:`train.plots`: ``log.csv`` / ``val.csv`` and the PNG figures.

The samples, the domain-interleaved sampler, the file scan and split and the curriculum live in
:mod:`genre.data.dataset`, :mod:`genre.data.sampler`, :mod:`genre.data.training_files` and
:mod:`genre.data.curriculum`.
"""
