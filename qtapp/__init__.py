"""QuantBench's desktop window: a thin Qt view over the ``core`` engine.

Nothing here computes a measurement. Widgets edit a StudySpec, the controller
runs the engine's generator in a worker thread, and the charts draw the events
it yields. ``core`` never imports this package.
"""
