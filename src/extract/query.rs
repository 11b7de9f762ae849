//! A query string as name-value pairs, read the way every route with parameters reads it.

/// The pairs of a query string. Decoding is lossy (a bad escape stays as it is), so any query
/// string is some pairs; a name given twice means its last value.
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value given for `name`.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}
