# Worked solutions for notebook 04_phinets (one block per exercise cell).

# SOLUTION 04.block_cost
# EXERCISE 04.block_cost
# The deck's cost of ONE inverted-residual block, at width alpha, expansion t, base channels c,
# depthwise kernel k, on an h x w feature map. Return (params, macs).
def my_block_cost(alpha, t, c, k, h, w):
    pointwise = 2 * alpha**2 * t * c**2      # expand (aC -> atC) + project (atC -> aC) 1x1 convs
    depthwise = alpha * t * c * k**2         # one k x k filter per expanded channel
    params = pointwise + depthwise
    macs = h * w * params                    # every weight is used once per output position
    return params, macs


th_checks.check_block_cost(my_block_cost)

# SOLUTION 04.alpha_for_macs
# EXERCISE 04.alpha_for_macs
# Invert the MAC closed form: the alpha whose closed-form MACs equal `mac_budget`.
# MAC(alpha) = a * alpha**2 + b * alpha, with a and b summed over th.scaling.phinet_blocks(...).
import math


def my_alpha_for_macs(mac_budget, input_shape, beta, t0):
    blocks = th.scaling.phinet_blocks(input_shape, beta, t0)
    a = sum(blk.in_hw[0] * blk.in_hw[1] * 2 * blk.expansion * blk.in_channels**2 for blk in blocks)  # 1x1 convs
    b = sum(blk.in_hw[0] * blk.in_hw[1] * blk.expansion * blk.in_channels * blk.kernel**2 for blk in blocks)  # depthwise
    return (-b + math.sqrt(b * b + 4 * a * mac_budget)) / (2 * a)   # the positive root


th_checks.check_alpha_for_macs(my_alpha_for_macs)
