//! Instruments bound to the label sets of closed sets, each bound at its first use, so a
//! recording on the request path pays two small index lookups and an atomic update instead
//! of building, sorting and hashing an attribute set.
//!
//! A label value outside its closed set (an error code, which `docs/errors.md` rather than
//! [`names`](crate::names) lists) has no slot: the caller records it unbound.

use std::sync::OnceLock;

/// One bound instrument per combination of up to three closed sets' values.
pub(crate) struct BoundTable<B> {
    /// The sizes of the sets, the first one slowest.
    sizes: [usize; 3],
    slots: Box<[OnceLock<B>]>,
}

impl<B> BoundTable<B> {
    /// A table for the sets of `sizes` (an unused set has size 1).
    pub(crate) fn new(sizes: [usize; 3]) -> Self {
        let len = sizes.iter().product();
        Self {
            sizes,
            slots: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The instrument bound to the combination `at` (each value's place in its set), bound
    /// by `bind` the first time; `None` when a value has no place.
    pub(crate) fn get(&self, at: [Option<usize>; 3], bind: impl FnOnce() -> B) -> Option<&B> {
        let mut index = 0;
        for (place, size) in at.into_iter().zip(self.sizes) {
            let place = place.filter(|p| *p < size)?;
            index = index * size + place;
        }
        Some(self.slots.get(index)?.get_or_init(bind))
    }
}

/// `value`'s place in `set`. Labels are `&'static str` constants, so the pointer usually
/// matches at once; equal text at another address matches too.
pub(crate) fn place(set: &[&str], value: &str) -> Option<usize> {
    set.iter()
        .position(|v| std::ptr::eq(*v, value))
        .or_else(|| set.iter().position(|v| *v == value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_combination_binds_once_and_outsiders_have_no_slot() {
        let table = BoundTable::new([2, 3, 1]);
        let mut binds = 0;
        for _ in 0..3 {
            for a in 0..2 {
                for b in 0..3 {
                    let got = table.get([Some(a), Some(b), Some(0)], || {
                        binds += 1;
                        (a, b)
                    });
                    assert_eq!(got, Some(&(a, b)));
                }
            }
        }
        assert_eq!(binds, 6, "one bind per combination");
        assert!(table.get([Some(2), Some(0), Some(0)], || (9, 9)).is_none());
        assert!(table.get([Some(0), None, Some(0)], || (9, 9)).is_none());
        assert!(table.get([Some(0), Some(0), Some(1)], || (9, 9)).is_none());
    }

    #[test]
    fn a_value_is_found_by_its_text_wherever_it_lives() {
        let set = ["permit", "deny", "error"];
        let elsewhere = String::from("deny");
        assert_eq!(place(&set, "permit"), Some(0));
        assert_eq!(place(&set, &elsewhere), Some(1));
        assert_eq!(place(&set, "PDP_DENY"), None);
    }
}
