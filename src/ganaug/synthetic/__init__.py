"""The synthetic images: the pool a generator fills (``pool``), every image's scores and the
pool's description (``scoring``), and iterative refinement (``refine``: fine-tune the GAN on real
plus selected images, generate, score and select again). Import the submodule you need: this
package imports nothing itself."""
