"""Training of GENRE-CMR (``genre train``).

* :mod:`genre.train.config`: :class:`~genre.train.config.TrainConfig`, the paper's recipe as defaults;
* :mod:`genre.train.run`: data split, datasets, process group, resumption; :func:`~genre.train.run.run_training`;
* :mod:`genre.train.trainer`: the loop (steps, epochs, weights, plots);
* :mod:`genre.train.adversary`: the discriminator's update and the generator's adversarial loss;
* :mod:`genre.train.validation`: validation through predict's forward path, the organizers' metrics;
* :mod:`genre.train.batch`: a batch on the network's scale (the inference scaling);
* :mod:`genre.train.objective`: per-cascade losses, CoV weighting, SDA bank, finite-gradient RSS;
* :mod:`genre.train.training_state`: the training state (``checkpoints/step_*.pt``) for exact resumption;
* :mod:`genre.train.distributed`: DDP setup from ``torchrun``'s environment and the collectives used;
* :mod:`genre.train.records`, :mod:`genre.train.plots`: ``log.csv`` / ``val.csv`` and the PNG figures.

The samples, the domain-interleaved sampler, the file scan and split and the curriculum live in
:mod:`genre.data.dataset`, :mod:`genre.data.sampler`, :mod:`genre.data.training_files` and
:mod:`genre.data.curriculum`.
"""
