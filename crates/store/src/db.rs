//! The thin layer that lets one body of store logic run on SQLite and PostgreSQL.
//!
//! Both backends use native sqlx drivers (so each keeps its own connection options:
//! WAL and `synchronous=FULL` for SQLite, `search_path` for PostgreSQL). Store code
//! writes SQL once, with `$1`-style placeholders (which SQLite accepts too), binds
//! values through the small [`Arg`] enum and reads columns through [`Row`]. Anything
//! dialect-specific lives in the migrations or behind [`Conn::is_postgres`].

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Database, Postgres, Row as _, Sqlite, Transaction};

use crate::error::{Result, StoreError};

/// A pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(i64),
    Text(String),
    OptI64(Option<i64>),
    OptText(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::OptText(v.map(str::to_string))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}

/// Builds a `Vec<Arg>` from values convertible into [`Arg`].
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::Arg::from($v)),*] };
}
pub(crate) use args;

/// A connection checked out of the pool, optionally inside a transaction.
#[derive(Debug)]
pub(crate) enum Held<DB: Database> {
    Plain(PoolConnection<DB>),
    Tx(Transaction<'static, DB>),
}

impl<DB: Database> Held<DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Held::Plain(c) => c,
            Held::Tx(t) => t,
        }
    }
}

/// A connection of either backend.
#[derive(Debug)]
pub(crate) enum Conn {
    Sqlite(Held<Sqlite>),
    Postgres(Held<Postgres>),
}

/// A result row of either backend.
#[derive(Debug)]
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

fn bind_all<'q, DB>(
    mut q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for a in args {
        q = match a {
            Arg::I64(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::OptI64(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
        };
    }
    q
}

impl Pool {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Pool::Postgres(_))
    }

    /// A plain connection (autocommit) for reads.
    pub(crate) async fn conn(&self) -> Result<Conn> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(Held::Plain(p.acquire().await?)),
            Pool::Postgres(p) => Conn::Postgres(Held::Plain(p.acquire().await?)),
        })
    }

    /// A read transaction: one consistent snapshot for multi-query reads.
    pub(crate) async fn read_tx(&self) -> Result<Conn> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(Held::Tx(p.begin().await?)),
            Pool::Postgres(p) => Conn::Postgres(Held::Tx(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
        })
    }

    /// A write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so
    /// concurrent writers queue on the busy timeout instead of failing on upgrade.
    pub(crate) async fn write_tx(&self) -> Result<Conn> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(Held::Tx(p.begin_with("BEGIN IMMEDIATE").await?)),
            Pool::Postgres(p) => Conn::Postgres(Held::Tx(p.begin().await?)),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Conn {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// Runs a statement, returning the number of rows affected.
    pub(crate) async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Conn::Sqlite(h) => bind_all(sqlx::query::<Sqlite>(sql), args)
                .execute(h.conn())
                .await
                .map_err(db_err)?
                .rows_affected(),
            Conn::Postgres(h) => bind_all(sqlx::query::<Postgres>(sql), args)
                .execute(h.conn())
                .await
                .map_err(db_err)?
                .rows_affected(),
        })
    }

    /// Runs a query, returning every row.
    pub(crate) async fn all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Conn::Sqlite(h) => bind_all(sqlx::query::<Sqlite>(sql), args)
                .fetch_all(h.conn())
                .await
                .map_err(db_err)?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Conn::Postgres(h) => bind_all(sqlx::query::<Postgres>(sql), args)
                .fetch_all(h.conn())
                .await
                .map_err(db_err)?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// Runs a query, returning the first row if any.
    pub(crate) async fn opt(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Conn::Sqlite(h) => bind_all(sqlx::query::<Sqlite>(sql), args)
                .fetch_optional(h.conn())
                .await
                .map_err(db_err)?
                .map(Row::Sqlite),
            Conn::Postgres(h) => bind_all(sqlx::query::<Postgres>(sql), args)
                .fetch_optional(h.conn())
                .await
                .map_err(db_err)?
                .map(Row::Postgres),
        })
    }

    /// Runs a query expected to return one `BIGINT`/`INTEGER` (e.g. a count).
    pub(crate) async fn scalar_i64(&mut self, sql: &str, args: Vec<Arg>) -> Result<i64> {
        match self.opt(sql, args).await? {
            Some(row) => row.i64(0),
            None => Err(StoreError::Database(format!("no row from: {sql}"))),
        }
    }

    /// Runs several `;`-separated statements without parameters (migrations).
    pub(crate) async fn exec_script(&mut self, sql: &str) -> Result<()> {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            Conn::Sqlite(h) => {
                sqlx::raw_sql(sql).execute(h.conn()).await.map_err(db_err)?;
            }
            Conn::Postgres(h) => {
                sqlx::raw_sql(sql).execute(h.conn()).await.map_err(db_err)?;
            }
        }
        Ok(())
    }

    /// Commits a transaction (no-op for a plain connection).
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Conn::Sqlite(Held::Tx(t)) => t.commit().await?,
            Conn::Postgres(Held::Tx(t)) => t.commit().await?,
            Conn::Sqlite(Held::Plain(_)) | Conn::Postgres(Held::Plain(_)) => {}
        }
        Ok(())
    }
}

/// Unique violations surface as this marker text so callers can map them to
/// `EntityAlreadyExists` with the right kind and name.
pub(crate) const UNIQUE_VIOLATION: &str = "unique violation";

fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Database(format!("{UNIQUE_VIOLATION}: {}", d.message()));
    }
    StoreError::from(e)
}

/// Maps a unique violation (a race the pre-checks missed) to `EntityAlreadyExists`.
pub(crate) fn map_unique(e: StoreError, kind: crate::EntityKind, name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::exists(kind, name)
    } else {
        e
    }
}

/// True when `e` came from a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(m) if m.starts_with(UNIQUE_VIOLATION))
}

impl Row {
    pub(crate) fn i64(&self, i: usize) -> Result<i64> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get::<i64, _>(i)?,
            Row::Postgres(r) => r.try_get::<i64, _>(i)?,
        })
    }

    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get::<Option<i64>, _>(i)?,
            Row::Postgres(r) => r.try_get::<Option<i64>, _>(i)?,
        })
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get::<String, _>(i)?,
            Row::Postgres(r) => r.try_get::<String, _>(i)?,
        })
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get::<Option<String>, _>(i)?,
            Row::Postgres(r) => r.try_get::<Option<String>, _>(i)?,
        })
    }
}
