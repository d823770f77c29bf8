"""flatland.testing: the conformance kit and Hypothesis strategies for plugin authors."""
