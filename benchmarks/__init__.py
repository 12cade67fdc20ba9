"""Side-by-side benchmarks of posthog-driver: `uv run python -m benchmarks [--quick]`.

Each case measures the driver and the thing it is compared with in the same process run,
alternating their order over several rounds, and reports the ratio's median and spread
(min to max over the rounds). Absolute times on a shared machine vary; ratios travel better.
Raw figures go to `benchmarks/results/` as JSON.
"""
