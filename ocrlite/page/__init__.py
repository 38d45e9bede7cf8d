"""Page-level steps before a page is read: orientation (0/90/180/270), small-angle deskew, and the step
runner that applies them and maps results back to the page as given."""
