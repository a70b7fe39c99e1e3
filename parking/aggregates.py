from django.db.models import Aggregate, JSONField


class JSONArrayAgg(Aggregate):
    """The aggregated values as one JSON array: ``jsonb_agg`` on PostgreSQL,
    ``json_group_array`` on SQLite (the local demo database)."""

    function = "JSONB_AGG"
    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra_context)
