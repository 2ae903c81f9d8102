"""Segment many images into one COCO file: the job behind ``samkit segment``.

The job finds the images of its inputs (files, folders searched recursively, globs),
segments each one (automatic masks, or box prompts from a detector's box file), and
writes one COCO ``annotations.json`` for all of them (and, with ``formats``, YOLO
segmentation labels and PNG cut-outs). It can be trusted with a long run:

- every image's result is written on its own, atomically, into ``OUT/.samkit/images/``
  as soon as it is done; ``annotations.json`` is assembled from those at the end. A run
  that is killed loses at most the images in flight, and the same command run again
  skips what is done;
- ``OUT/.samkit/settings.json`` records the settings the results were made with (the
  checkpoint by its sha256); a run with other settings is refused (``overwrite=True``
  starts afresh instead), so results of two settings are never mixed; an image is
  redone when its content changed. The device, the engine and ``fast`` are not part of
  it: a run started on a laptop may be finished on a cluster;
- a file that cannot be read or segmented is reported with its path and the reason,
  and the run goes on;
- nothing is written to ``OUT`` before the model has loaded, and only samkit's own
  files there are ever replaced or deleted.

The modules, in the order a run meets them:

- :mod:`samkit.segment.spec`: the settings, the items, the errors and the summary;
- :mod:`samkit.segment.discovery`: the files of the inputs and their ``file_name``;
- :mod:`samkit.segment.source`: an image file opened safely (never a FIFO) and known by
  its sha256, and the checkpoint's sha256;
- :mod:`samkit.segment.owned`: which files in ``OUT`` samkit wrote, the only ones it
  replaces or deletes; a folder holding others is refused;
- :mod:`samkit.segment.store`: ``OUT/.samkit/`` (settings, per-image records, summary)
  and ``annotations.json`` assembled from it;
- :mod:`samkit.segment.outputs`: the formats (COCO, YOLO labels, cut-outs) and their files;
- :mod:`samkit.segment.worker`: :class:`ImageWorker`, one model segmenting one image at
  a time, the same for both engines, so both write the same files;
- :mod:`samkit.segment.job`: :func:`segment_images` and the local engine;
- :mod:`samkit.segment.ray`: the Ray engine.

Example:
    ```python
    summary = samkit.segment_images(["photos/"], "out/", points_per_side=16)
    print(summary)
    ```
"""

from __future__ import annotations

from samkit.segment.discovery import discover
from samkit.segment.job import run_local, segment_images
from samkit.segment.spec import (
    AMG_CATEGORY,
    ANNOTATIONS_FILE,
    ENGINES,
    STORE_DIR,
    STORE_FORMAT,
    Failure,
    ImageItem,
    JobSpec,
    SegmentSummary,
    SegmentUsageError,
)
from samkit.segment.store import assemble
from samkit.segment.worker import ImageWorker, detections_to_annotations

__all__ = [
    "AMG_CATEGORY",
    "ANNOTATIONS_FILE",
    "ENGINES",
    "STORE_DIR",
    "STORE_FORMAT",
    "Failure",
    "ImageItem",
    "ImageWorker",
    "JobSpec",
    "SegmentSummary",
    "SegmentUsageError",
    "assemble",
    "detections_to_annotations",
    "discover",
    "run_local",
    "segment_images",
]
