# GENRE-CMR submission image for the CMRxRecon 2025 test harness (docs/container.md).
#
# The harness runs `docker run --gpus ... -v IN:/input:ro -v OUT:/output IMAGE` with no
# arguments, no network and as root, so the entry point reconstructs /input into /output with
# the weights baked in below. The organizers' driver is 550, hence a CUDA <= 12.4 base.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# GENRE_METHOD (genre|sense|zero-filled) and GENRE_OUTPUT_MODE (full|ranking) are read by
# /app/predict.py and can be overridden with `docker run -e`.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENRE_METHOD=genre \
    GENRE_OUTPUT_MODE=full

WORKDIR /app

# The base image's torch is kept (it matches the base's CUDA); pyproject pins torch for the
# CPU development path only, so the package goes in with --no-deps and its other
# dependencies are pinned here, before the source is copied, to keep this layer cached.
RUN pip install \
        numpy==2.4.6 \
        scipy==1.17.1 \
        h5py==3.16.0 \
        scikit-image==0.26.0 \
        tqdm==4.70.1 \
        safetensors==0.8.0 \
        matplotlib==3.11.2

# genre/ carries the shipped weights (genre/weights/) when they exist; /app/predict.py imports
# this copy, so the weights are found whether or not the wheel packages them. COPY keeps the
# links genre/evaluation and genre/train (to ../evaluation and ../train, the packages
# genre.evaluation and genre.train), so both folders are copied beside genre/.
COPY pyproject.toml README.md predict.py ./
COPY genre ./genre
COPY evaluation ./evaluation
COPY train ./train
# The in-tree build leaves build/ and an egg-info behind; the latter would make /app a second
# installed copy of the package. The --help run fails the build, rather than the harness run,
# if the entry point cannot even start on the base image (its torch, its Python).
RUN pip install --no-deps . \
    && rm -rf build genre_cmr.egg-info \
    && python /app/predict.py --help > /dev/null

ENTRYPOINT ["python", "/app/predict.py"]
