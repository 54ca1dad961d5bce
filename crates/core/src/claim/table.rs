//! The cells the claimer tracks: interned behind small ids, bounded, and
//! forgotten once they are done and quiet.

use super::cell::{Cell, Phase};
use super::timer::{CellId, Timer};
use super::{CellKey, Claimer};
use buildmesh_protocol::Timestamp;

/// Most cells tracked at once. Cells any trusted bidder can make us track
/// go first when it is reached; cells we build are never dropped.
pub(crate) const CELLS_MAX: usize = 4096;

/// A done or unwanted cell this long without news is forgotten, ms. The
/// driver feeds a cell's facts again with its `Wanted`, so a forgotten
/// cell that comes back is rebuilt from them.
pub(crate) const FORGET_AFTER_MS: u64 = 10 * 60 * 1000;

impl Claimer {
    /// The id of the cell `key`, tracking it if it is on one of our
    /// platforms and there is room; `None` means drop the input.
    pub(super) fn cell_id(&mut self, now: Timestamp, key: CellKey) -> Option<CellId> {
        if !self.platforms.contains(&key.platform) {
            return None;
        }
        if let Some(&id) = self.index.get(&key) {
            if let Some(cell) = self.cells.get_mut(&id) {
                cell.touched = cell.touched.max(now);
            }
            return Some(id);
        }
        if self.cells.len() >= CELLS_MAX && !self.evict_one() {
            return None;
        }
        let id = CellId(self.next_id);
        self.next_id += 1;
        self.cells.insert(id, Cell::new(key.clone(), &self.me, now));
        self.index.insert(key, id);
        self.timers
            .set(id, Timer::Forget, now.plus_ms(FORGET_AFTER_MS));
        Some(id)
    }

    /// The id of a cell already tracked.
    pub(super) fn known_id(&self, key: &CellKey) -> Option<CellId> {
        self.index.get(key).copied()
    }

    /// Forgets the cell if it has been forgettable and quiet long enough;
    /// otherwise looks again later.
    pub(super) fn maybe_forget(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get(&id) else {
            return;
        };
        let quiet_until = cell.touched.plus_ms(FORGET_AFTER_MS);
        if quiet_until > now {
            self.timers.set(id, Timer::Forget, quiet_until);
        } else if forgettable(cell) {
            self.remove(id);
        } else {
            self.timers
                .set(id, Timer::Forget, now.plus_ms(FORGET_AFTER_MS));
        }
    }

    fn remove(&mut self, id: CellId) {
        if let Some(cell) = self.cells.remove(&id) {
            self.index.remove(&cell.key);
        }
        self.timers.stop_all(id);
    }

    /// Makes room: the quietest cell nobody wants here, else the quietest
    /// done one. False if every cell is wanted and open, or ours.
    fn evict_one(&mut self) -> bool {
        let quietest = |pick: &dyn Fn(&Cell) -> bool| {
            self.cells
                .iter()
                .filter(|(_, cell)| cell.phase != Phase::Building && pick(cell))
                .min_by_key(|(_, cell)| cell.touched)
                .map(|(id, _)| *id)
        };
        let victim =
            quietest(&|cell| cell.want.is_none()).or_else(|| quietest(&|cell| cell.is_done()));
        match victim {
            Some(id) => {
                self.remove(id);
                true
            }
            None => false,
        }
    }
}

/// Nothing left to decide: not ours to build, and not wanted or done.
fn forgettable(cell: &Cell) -> bool {
    cell.phase != Phase::Building && (cell.want.is_none() || cell.is_done())
}
