//! Per-item order, shared by the pipeline and re-drive: each item's units
//! wait in a queue in stream order; a publishing wave takes at most one unit
//! per item, the head of its queue, so no unit overtakes an earlier one of
//! its item; when an item's unit cannot be delivered, the rest of its queue
//! is settled behind it.

use std::collections::{HashMap, VecDeque};

/// Units of work per item, in stream order.
#[derive(Debug)]
pub struct ItemQueues<U> {
    queues: Vec<VecDeque<U>>,
    slots: HashMap<String, usize>,
}

impl<U> Default for ItemQueues<U> {
    fn default() -> Self {
        ItemQueues {
            queues: Vec::new(),
            slots: HashMap::new(),
        }
    }
}

impl<U> ItemQueues<U> {
    /// Appends `unit` to `item`'s queue (queues are numbered in order of
    /// the items' first units); returns the queue.
    pub fn push(&mut self, item: &str, unit: U) -> usize {
        let slot = match self.slots.get(item) {
            Some(&slot) => slot,
            None => {
                self.slots.insert(item.to_owned(), self.queues.len());
                self.queues.push(VecDeque::new());
                self.queues.len() - 1
            }
        };
        self.queues[slot].push_back(unit);
        slot
    }

    /// A queue of its own for a unit whose item is unknown; returns it.
    pub fn push_alone(&mut self, unit: U) -> usize {
        self.queues.push(VecDeque::from([unit]));
        self.queues.len() - 1
    }

    /// The queue of `item`, if it has one.
    pub fn slot(&self, item: &str) -> Option<usize> {
        self.slots.get(item).copied()
    }

    /// How many queues there are.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether there are no queues.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The head of queue `q`.
    pub fn front(&self, q: usize) -> Option<&U> {
        self.queues[q].front()
    }

    /// The units of queue `q`, head first.
    pub fn iter(&self, q: usize) -> impl Iterator<Item = &U> + '_ {
        self.queues[q].iter()
    }

    /// Takes the head of queue `q`.
    pub fn pop_front(&mut self, q: usize) -> Option<U> {
        self.queues[q].pop_front()
    }

    /// Puts `unit` at the head of queue `q` (a unit that turned into several).
    pub fn push_front(&mut self, q: usize, unit: U) {
        self.queues[q].push_front(unit);
    }

    /// Empties queue `q`: what waited behind a unit that cannot go now.
    pub fn drain(&mut self, q: usize) -> impl Iterator<Item = U> + '_ {
        self.queues[q].drain(..)
    }

    /// The next wave: the head of every non-empty queue, with its queue.
    pub fn wave(&mut self) -> Vec<(usize, U)> {
        self.queues
            .iter_mut()
            .enumerate()
            .filter_map(|(q, queue)| queue.pop_front().map(|unit| (q, unit)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_take_one_unit_per_item_in_order() {
        let mut queues = ItemQueues::default();
        for (item, unit) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)] {
            queues.push(item, unit);
        }
        let alone = queues.push_alone(6);
        assert_eq!(queues.wave(), [(0, 1), (1, 2), (2, 4), (alone, 6)]);
        assert_eq!(queues.wave(), [(0, 3)]);
        // a's next unit failed: the rest of a waits behind it.
        assert_eq!(queues.drain(0).collect::<Vec<_>>(), [5]);
        assert!(queues.wave().is_empty());
        assert_eq!(queues.slot("b"), Some(1));
    }
}
