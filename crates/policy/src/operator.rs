//! Condition operator names: `[ForAllValues:|ForAnyValue:]Base[IfExists]`.
//!
//! Kept apart from evaluation so that the validator, the analyzer and the compiler agree on
//! one list of what AWS documents.

use std::fmt;

/// The comparison an operator performs, before qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// What kind of value an operator compares; decides how values are checked and compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Text, optionally with wildcards and policy variables.
    String,
    /// Integers or decimals.
    Numeric,
    /// ISO 8601 dates or epoch seconds.
    Date,
    /// `true` or `false`.
    Bool,
    /// Base64 text.
    Binary,
    /// IPv4/IPv6 addresses or CIDR blocks.
    Ip,
    /// ARNs, matched per colon-separated segment.
    Arn,
    /// `true` (key absent) or `false` (key present).
    Null,
}

const ALL: [(BaseOperator, &str); 27] = [
    (BaseOperator::StringEquals, "StringEquals"),
    (BaseOperator::StringNotEquals, "StringNotEquals"),
    (
        BaseOperator::StringEqualsIgnoreCase,
        "StringEqualsIgnoreCase",
    ),
    (
        BaseOperator::StringNotEqualsIgnoreCase,
        "StringNotEqualsIgnoreCase",
    ),
    (BaseOperator::StringLike, "StringLike"),
    (BaseOperator::StringNotLike, "StringNotLike"),
    (BaseOperator::NumericEquals, "NumericEquals"),
    (BaseOperator::NumericNotEquals, "NumericNotEquals"),
    (BaseOperator::NumericLessThan, "NumericLessThan"),
    (BaseOperator::NumericLessThanEquals, "NumericLessThanEquals"),
    (BaseOperator::NumericGreaterThan, "NumericGreaterThan"),
    (
        BaseOperator::NumericGreaterThanEquals,
        "NumericGreaterThanEquals",
    ),
    (BaseOperator::DateEquals, "DateEquals"),
    (BaseOperator::DateNotEquals, "DateNotEquals"),
    (BaseOperator::DateLessThan, "DateLessThan"),
    (BaseOperator::DateLessThanEquals, "DateLessThanEquals"),
    (BaseOperator::DateGreaterThan, "DateGreaterThan"),
    (BaseOperator::DateGreaterThanEquals, "DateGreaterThanEquals"),
    (BaseOperator::Bool, "Bool"),
    (BaseOperator::BinaryEquals, "BinaryEquals"),
    (BaseOperator::IpAddress, "IpAddress"),
    (BaseOperator::NotIpAddress, "NotIpAddress"),
    (BaseOperator::ArnEquals, "ArnEquals"),
    (BaseOperator::ArnLike, "ArnLike"),
    (BaseOperator::ArnNotEquals, "ArnNotEquals"),
    (BaseOperator::ArnNotLike, "ArnNotLike"),
    (BaseOperator::Null, "Null"),
];

impl BaseOperator {
    /// Every operator AWS documents.
    pub fn all() -> impl Iterator<Item = BaseOperator> {
        ALL.iter().map(|(op, _)| *op)
    }

    /// The operator's name.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(op, _)| *op == self)
            .map_or("Null", |(_, n)| n)
    }

    fn parse(s: &str) -> Option<BaseOperator> {
        ALL.iter().find(|(_, n)| *n == s).map(|(op, _)| *op)
    }

    /// True for operators whose result is the negation of a positive match
    /// (`StringNotEquals`, `NotIpAddress`, ...): they are true when the key is absent.
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// The kind of values the operator compares.
    pub fn value_kind(self) -> ValueKind {
        use BaseOperator::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => ValueKind::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => ValueKind::Numeric,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => ValueKind::Date,
            Bool => ValueKind::Bool,
            BinaryEquals => ValueKind::Binary,
            IpAddress | NotIpAddress => ValueKind::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => ValueKind::Arn,
            Null => ValueKind::Null,
        }
    }

    /// True when policy variables may appear in this operator's values.
    pub fn allows_variables(self) -> bool {
        matches!(self.value_kind(), ValueKind::String | ValueKind::Arn)
    }
}

/// `ForAllValues:` or `ForAnyValue:`: how a multivalued key is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// Every value in the request must match; true when the key is absent or empty.
    ForAllValues,
    /// At least one value in the request must match; false when the key is absent or empty.
    ForAnyValue,
}

/// A parsed condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    /// The set qualifier, when given.
    pub qualifier: Option<SetQualifier>,
    /// The comparison.
    pub base: BaseOperator,
    /// True for `...IfExists`: the condition is true when the key is absent.
    pub if_exists: bool,
}

/// Why an operator name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorError {
    /// Not an operator AWS documents.
    Unknown,
    /// `NullIfExists`: AWS does not allow `IfExists` on `Null`.
    IfExistsOnNull,
}

impl Operator {
    /// Parses an operator name such as `ForAnyValue:StringLikeIfExists`.
    pub fn parse(text: &str) -> Result<Operator, OperatorError> {
        let (qualifier, rest) = if let Some(r) = text.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = text.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, text)
        };
        if let Some(base) = BaseOperator::parse(rest) {
            return Ok(Operator {
                qualifier,
                base,
                if_exists: false,
            });
        }
        if let Some(stem) = rest.strip_suffix("IfExists") {
            return match BaseOperator::parse(stem) {
                Some(BaseOperator::Null) => Err(OperatorError::IfExistsOnNull),
                Some(base) => Ok(Operator {
                    qualifier,
                    base,
                    if_exists: true,
                }),
                None => Err(OperatorError::Unknown),
            };
        }
        Err(OperatorError::Unknown)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        for base in BaseOperator::all() {
            let op = Operator::parse(base.name());
            assert_eq!(op.map(|o| o.base), Ok(base));
            if base != BaseOperator::Null {
                let name = format!("ForAnyValue:{}IfExists", base.name());
                let op = Operator::parse(&name);
                assert_eq!(op.map(|o| o.to_string()), Ok(name));
            }
        }
        assert_eq!(
            Operator::parse("NullIfExists"),
            Err(OperatorError::IfExistsOnNull)
        );
        assert_eq!(Operator::parse("StringEqualz"), Err(OperatorError::Unknown));
        assert_eq!(
            Operator::parse("ForSomeValues:StringEquals"),
            Err(OperatorError::Unknown)
        );
    }
}
