"""All Qt code of the viewer: application, main window, views, panels, workers, dialogs."""
