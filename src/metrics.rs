//! The metrics of docs/math.md §5: distances to `π*` and certificates that need no `π*`.

use crate::kernels::vector::{logsumexp_by, span_by, sum_by};

/// One iterate's metrics; `None` where a metric does not apply or was not computed. Serialised
/// as an object keyed by [`Metric::name`] (floats by their bits inside a checkpoint, see
/// [`crate::io::blobfile::bits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub kl_star: Option<f64>,
    pub kl_star_rev: Option<f64>,
    pub span_star: Option<f64>,
    pub exploit: Option<f64>,
    pub gap: Option<f64>,
    pub exploit0: Option<f64>,
    pub residual: Option<f64>,
    pub bound: Option<f64>,
}

/// The metrics, in the order of their columns: this table names every metric column of
/// `metrics.csv` and `runs.csv` and every metric a checkpoint saves. Adding a metric is one
/// variant here, one field of [`Metrics`] and one arm of [`Metric::slot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    KlStar,
    KlStarRev,
    SpanStar,
    Exploit,
    Gap,
    Exploit0,
    Residual,
    Bound,
}

impl Metric {
    /// Every metric, in column order.
    pub const ALL: [Metric; 8] = [
        Metric::KlStar,
        Metric::KlStarRev,
        Metric::SpanStar,
        Metric::Exploit,
        Metric::Gap,
        Metric::Exploit0,
        Metric::Residual,
        Metric::Bound,
    ];
    /// How many metrics there are.
    pub const COUNT: usize = Metric::ALL.len();

    /// The column name (also the key in checkpoints and the field of [`Metrics`]).
    pub fn name(self) -> &'static str {
        self.name_const()
    }

    const fn name_const(self) -> &'static str {
        match self {
            Metric::KlStar => "kl_star",
            Metric::KlStarRev => "kl_star_rev",
            Metric::SpanStar => "span_star",
            Metric::Exploit => "exploit",
            Metric::Gap => "gap",
            Metric::Exploit0 => "exploit0",
            Metric::Residual => "residual",
            Metric::Bound => "bound",
        }
    }

    /// Position in column order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric of that name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// This metric's value in `m`.
    pub fn get(self, m: &Metrics) -> Option<f64> {
        let mut m = *m;
        *self.slot(&mut m)
    }

    /// This metric's field of `m`.
    pub fn slot(self, m: &mut Metrics) -> &mut Option<f64> {
        match self {
            Metric::KlStar => &mut m.kl_star,
            Metric::KlStarRev => &mut m.kl_star_rev,
            Metric::SpanStar => &mut m.span_star,
            Metric::Exploit => &mut m.exploit,
            Metric::Gap => &mut m.gap,
            Metric::Exploit0 => &mut m.exploit0,
            Metric::Residual => &mut m.residual,
            Metric::Bound => &mut m.bound,
        }
    }

    /// A CSV header: the columns `before`, every metric's name, then the columns `after`.
    pub fn header(before: &[&str], after: &[&str]) -> String {
        let names = Metric::ALL.map(Metric::name);
        [before, &names[..], after].concat().join(",")
    }
}

impl Metrics {
    /// The values in column order ([`Metric::ALL`]).
    pub fn values(&self) -> [Option<f64>; Metric::COUNT] {
        Metric::ALL.map(|k| k.get(self))
    }

    /// The inverse of [`Metrics::values`].
    pub fn from_values(v: [Option<f64>; Metric::COUNT]) -> Self {
        let mut m = Metrics::default();
        for k in Metric::ALL {
            *k.slot(&mut m) = v[k.index()];
        }
        m
    }
}

/// One metric's value, serialised as [`crate::io::blobfile::bits::opt`] says.
struct Value(Option<f64>);

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::io::blobfile::bits::opt::serialize(&self.0, s)
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::io::blobfile::bits::opt::deserialize(d).map(Value)
    }
}

impl serde::Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Metrics", Metric::COUNT)?;
        for k in Metric::ALL {
            st.serialize_field(k.name(), &Value(k.get(self)))?;
        }
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for Metrics {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Metrics;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("metrics keyed by name")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Metrics, A::Error> {
                let mut m = Metrics::default();
                while let Some(key) = a.next_key::<String>()? {
                    let k = Metric::from_name(&key).ok_or_else(|| {
                        serde::de::Error::custom(format!("unknown metric {key:?}"))
                    })?;
                    *k.slot(&mut m) = a.next_value::<Value>()?.0;
                }
                Ok(m)
            }
        }
        const NAMES: [&str; Metric::COUNT] = {
            let mut n = [""; Metric::COUNT];
            let mut i = 0;
            while i < Metric::COUNT {
                n[i] = Metric::ALL[i].name_const();
                i += 1;
            }
            n
        };
        d.deserialize_struct("Metrics", &NAMES, V)
    }
}

/// `KL(π_a ‖ π_b) = Σ π_a (θ_a − θ_b)` for normalised log-policies.
pub fn kl(theta_a: &[f64], theta_b: &[f64]) -> f64 {
    sum_by(theta_a.len(), |i| {
        let p = theta_a[i].exp();
        if p == 0.0 {
            0.0
        } else {
            p * (theta_a[i] - theta_b[i])
        }
    })
    .max(0.0)
}

/// `max_i (θ_a − θ_b)_i − min_i (θ_a − θ_b)_i`.
pub fn span_diff(theta_a: &[f64], theta_b: &[f64]) -> f64 {
    span_by(theta_a.len(), |i| theta_a[i] - theta_b[i])
}

/// The one-sided exploitability of the β-regularised game,
/// `β·logsumexp(θ_μ + g/β) + β·KL(π‖μ) − 1/2` (for `β = 0`: `max g − 1/2`).
pub fn exploit(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> f64 {
    if beta == 0.0 {
        return exploit0(g);
    }
    let best = beta * logsumexp_by(g.len(), |i| theta_ref[i] + g[i] / beta);
    (best + beta * kl(theta, theta_ref) - 0.5).max(0.0)
}

/// The unregularised exploitability `max_i g_i − 1/2`.
pub fn exploit0(g: &[f64]) -> f64 {
    crate::kernels::vector::max_by(g.len(), |i| g[i]) - 0.5
}

/// The fixed-point residual `span(θ − θ_μ − g/β)` (`β > 0`).
pub fn residual(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> f64 {
    span_by(theta.len(), |i| theta[i] - theta_ref[i] - g[i] / beta)
}

/// Metrics that need no `π*` (`g = g(π)`).
pub fn cheap(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> Metrics {
    let e = exploit(theta, g, theta_ref, beta);
    Metrics {
        exploit: Some(e),
        gap: Some(2.0 * e),
        exploit0: Some(exploit0(g)),
        residual: (beta > 0.0).then(|| residual(theta, g, theta_ref, beta)),
        ..Metrics::default()
    }
}

/// Adds the metrics against `θ*` to `m`.
pub fn add_star(m: &mut Metrics, theta: &[f64], theta_star: &[f64]) {
    m.kl_star = Some(kl(theta_star, theta));
    m.kl_star_rev = Some(kl(theta, theta_star));
    m.span_star = Some(span_diff(theta, theta_star));
}

/// Nash-MP's guarantee `(1 + αβ)^{−k} · KL(π*‖π_0)` (docs/math.md §4).
pub fn bound(alpha: f64, beta: f64, k: u64, kl0: f64) -> f64 {
    kl0 * (-(k as f64) * (alpha * beta).ln_1p()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_table_is_in_order_and_covers_every_field() {
        for (i, k) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(Metric::from_name(k.name()), Some(k));
        }
        // Each metric owns its own field: setting one sets exactly one value.
        for k in Metric::ALL {
            let mut m = Metrics::default();
            *k.slot(&mut m) = Some(1.0);
            let v = m.values();
            assert_eq!(v.iter().filter(|x| x.is_some()).count(), 1);
            assert_eq!(v[k.index()], Some(1.0));
            assert_eq!(Metrics::from_values(v), m);
        }
        assert_eq!(
            Metric::header(&["a"], &["z"]),
            "a,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound,z"
        );
    }

    #[test]
    fn closed_forms() {
        let a = [0.25f64.ln(), 0.75f64.ln()];
        let b = [0.5f64.ln(), 0.5f64.ln()];
        let want = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        assert!((kl(&a, &b) - want).abs() < 1e-15);
        assert_eq!(kl(&a, &a), 0.0);
        assert!((span_diff(&a, &b) - (1.5f64.ln() - 0.5f64.ln())).abs() < 1e-15);
        assert!((bound(2.0, 0.5, 3, 1.0) - 0.125).abs() < 1e-15);
        // Rock-paper-scissors: uniform is the equilibrium for any β and its exploit is 0.
        let u = [(1.0f64 / 3.0).ln(); 3];
        let g = [0.5; 3];
        assert!(exploit(&u, &g, &u, 0.1).abs() < 1e-15);
        assert!(residual(&u, &g, &u, 0.1).abs() < 1e-15);
        // A pure strategy against a game where action 0 always wins: exploit0 = 1/2.
        assert!((exploit0(&[1.0, 0.5, 0.0]) - 0.5).abs() < 1e-15);
    }
}
