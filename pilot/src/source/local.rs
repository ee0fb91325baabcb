//! The local source: a directory of config YAML, watched for changes.
