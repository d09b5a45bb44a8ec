"""Reading what a person brings: `read_image` (every raster format and DICOM, every failure a sentence),
`to_model_input`, the DICOM header allow-list and its errors in words, folders and zip archives of images,
the shipped example scans and where the shipped files live.

Layer 1, just above the task registry: modules here import only `medimg_core.tasks` and each other.
"""
