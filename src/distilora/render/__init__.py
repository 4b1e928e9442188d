"""General tools to present results: a format-neutral document model (tables, images, bullets) rendered as Markdown
or self-contained HTML, number formatting, and saving figures. Used by the report, the checks and the model cards."""
