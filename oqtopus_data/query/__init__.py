"""Reading an export: DuckDB connections and polars frames with the views (views), the SQL text (sqltext, viewtext),
DDL for other engines, usage figures and prices. Internal."""
