"""US-GAN: facial expression synthesis with an ultimate skip connection (arXiv 2112.13002).

The core, plain PyTorch: models.py (G and D), losses.py, step.py (one iteration), config.py (settings, presets),
data/ (readers, the synthetic faces, split, uint8 cache), translate.py (running G), images.py (uint8 <-> [-1, 1]),
errors.py (what the library raises). Around it: training_loop.py (the loop every Ray worker runs), launch.py (what
every Ray launcher shares) with train.py and tune.py on top; evaluate.py, metrics/, ablation.py; faces.py,
video.py, synthesize.py and app.py for photos; export.py, checkpoints.py, run_outputs.py; weights/ (named
weights, each with the crop it was trained on, fetched and verified on request). cli_common.py is what the
command lines share; no library module imports it. Imports torch, Ray (only inside launchers), never study_app,
analysis or vote_format.
"""

__version__ = "0.1.0"
