"""Work off the GUI thread: the study controller and worker, background tasks, the live buffer, recording."""
