"""Multi-process and browser tests: real `takeback serve` processes, headless Chromium."""
