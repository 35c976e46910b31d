# clinical-viewer, headless CPU image: runs the command line (segment, compare, scan, convert, model).
#
#   docker build -t clinical-viewer:cpu .
#   docker run --rm --network none -v /path/to/study:/in:ro -v /path/to/out:/out \
#       clinical-viewer:cpu segment /in --out /out --anonymize
#
# See docs/docker.md. No GUI (PySide6 is not installed), no network needed at run time, runs as
# the unprivileged user "viewer" (uid 10001). Every Python package is pinned to the versions the
# test suite was run with; torch is the CPU-only wheel (for `compare` and `--engine torch`; set
# --build-arg WITH_TORCH=0 for an ONNX-only image about 700 MB smaller).

# Base image pinned by tag (Debian 12 "bookworm"); pin a digest (python:3.11.7-slim-bookworm@sha256:...)
# in a regulated deployment so rebuilds are bit-for-bit the same.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG WITH_TORCH=1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QT_QPA_PLATFORM=offscreen \
    OMP_NUM_THREADS=2

# fonts-dejavu-core: the PDF report's Unicode font (it falls back to reportlab's bundled Vera).
# dicom3tools is not needed at run time (tests only).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Runtime dependencies, pinned (same versions as the development environment; see pyproject.toml
# for the lower bounds the code needs). PySide6 (GUI) is deliberately left out: headless image.
RUN python -m pip install \
        "pip==24.3.1" "setuptools==75.6.0" "wheel==0.45.1" \
    && python -m pip install \
        "numpy==2.4.6" \
        "scipy==1.17.1" \
        "onnx==1.23.2" \
        "onnxscript==0.7.2" \
        "onnxruntime==1.32.0" \
        "pydicom==3.0.2" \
        "pylibjpeg==2.1.0" \
        "pylibjpeg-libjpeg==2.5.0" \
        "pylibjpeg-openjpeg==2.6.0" \
        "pylibjpeg-rle==2.2.0" \
        "pyjpegls==1.5.1" \
        "imagecodecs==2026.3.6" \
        "opencv-python-headless==5.0.0.93" \
        "highdicom==0.28.2" \
        "nibabel==5.4.2" \
        "platformdirs==4.14.8" \
        "reportlab==5.1.0" \
        "pillow==13.0.0" \
        "psutil==7.2.2" \
    && if [ "$WITH_TORCH" = "1" ]; then \
        python -m pip install --index-url https://download.pytorch.org/whl/cpu \
            "torch==2.14.1+cpu" "torchvision==0.29.1+cpu" \
        && python -m pip install "grad-cam==1.5.7" "matplotlib==3.11.2" "scikit-learn==1.9.1" \
            "tqdm==4.70.1" "ttach==0.0.3"; \
    fi

# The application: source tree at /opt/clinical-viewer (shipped model packages live in
# resources/models next to the code), installed editable so the `clinical-viewer` command exists.
WORKDIR /opt/clinical-viewer
# the whole build context minus .dockerignore (tests, docs, bench, runs, .git): pyproject.toml,
# README.md, main.py, viewer/, inference/ and resources/ (when the checkout has shipped models)
COPY . ./
RUN python -m pip install --no-deps --no-build-isolation -e . \
    && python -c "import viewer.cli, inference.package, viewer.export.seg, viewer.export.report" \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin viewer \
    && mkdir -p /in /out /models \
    && chown viewer:viewer /out /models

# User model packages (a folder per model with model.json) can be mounted at /models.
ENV CLINICAL_VIEWER_MODELS=/models \
    CLINICAL_VIEWER_HOME=/home/viewer/.clinical-viewer \
    HOME=/home/viewer
USER viewer
WORKDIR /home/viewer
VOLUME ["/out"]

ENTRYPOINT ["clinical-viewer"]
CMD ["--help"]
