"""How good a model or a set of images is: FID and KID (``fid``) in pytorch-fid's Inception
space (``inception``) or the scorer's; precision/recall/density/coverage and memorisation
(``diagnostics``); a classifier's calibration (``calibration``) and its test-set evaluation
(``evaluation``). Import the submodule you need: this package imports nothing itself."""
