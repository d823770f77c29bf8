"""The ReLU tasks expose their forward pass to forward-noise models (node/weight dropout, node noise)."""
import jax
import numpy as np

import flatland


def test_relu_forward_pass_is_the_loss_and_node_dropout_perturbs_it():
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=0, n_hid=20)
    p = loss.init(jax.random.key(0))
    ex = loss.extras
    out, h = ex["apply"](p, ex["x_train"])
    np.testing.assert_allclose(ex["loss_fn"](out, ex["y_train"]), loss(p), rtol=1e-13)
    np.testing.assert_allclose(h, ex["responses"](p), rtol=0, atol=0)
    noise = reg.create("noise", "node-dropout", layer=1)
    hyper = flatland.as_hyper(noise.hyper, {"p": 0.5})
    noisy = noise.transform(loss, jax.random.key(1), hyper)
    # a dropout mask changes the loss; over masks its mean is the loss plus the dropout penalty
    # p/(2(1-p))·mean_x Σ_j a_j² h_j(x)² > 0 (estimator: mean of 64 masks; must exceed the clean loss by 3 s.e.)
    vals = np.array([float(noise.transform(loss, jax.random.key(k), hyper)(p)) for k in range(64)])
    assert float(noisy(p)) != float(loss(p))
    assert vals.mean() - float(loss(p)) > 3 * vals.std(ddof=1) / np.sqrt(vals.size)
