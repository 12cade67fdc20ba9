"""Integrations with web frameworks; each module needs its extra and is imported on its own.

- `posthog_driver.integrations.fastapi`: lifespan, dependency and error handlers (`fastapi`).
"""
