"""Model families used in the course, one submodule each.

Import from the submodule, e.g. ``from tinyml_helpers.models.dscnn import DSCNN``; this
package does not import them eagerly, so ``import tinyml_helpers`` stays fast.
"""
