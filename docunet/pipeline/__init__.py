"""The raw-text pipeline's pieces above the models: the bundle on disk (bundle.py) and end-to-end evaluation
(evaluate.py). Serving it is `docunet.runtime.pipeline.Pipeline`, reached through `Runtime.load(bundle_dir)`."""
