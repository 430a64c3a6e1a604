"""The test suite, one folder per product (usgan, study_app, analysis, cluster); tests may import any product."""
