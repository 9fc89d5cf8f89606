"""The main window, its history controller, dialogs, theme and error reporting."""
