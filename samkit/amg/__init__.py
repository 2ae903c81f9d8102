"""The automatic mask generator under every samkit entry point.

:class:`~samkit.amg.generator.MaskGenerator` takes ``SamAutomaticMaskGenerator``'s
arguments and gives its records, with its memory bounded by the output rather than by
the photo's size times the batch, float32 prompts on every device, and ``[]`` (never a
traceback) when no mask passes. ``samkit.amg.steps`` holds the steps on masks.
"""
