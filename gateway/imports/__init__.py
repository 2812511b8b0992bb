"""Bulk seller imports: NDJSON or CSV feeds of counts, deltas and products, streamed.

`lines` splits the streamed body into numbered rows, `rows` validates and maps each one,
`batches` groups good rows into canonical commands with content-derived keys, `jobs` stores
jobs, per-row errors and commands, and `runner` ties them together for one upload.
"""
