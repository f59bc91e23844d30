//! A fixed latitude/longitude grid over points on the globe that answers
//! "the `k` nearest points that pass a filter" exactly, by widening a window
//! of cells around the query until no unvisited cell can hold a nearer point.
//!
//! Pure and built once per snapshot: a replica's candidate cache rebuilds it
//! whenever it re-reads the hosts, off the allocation path.

use gridplay_protocol::GeoPoint;

use super::distance_km;

/// Cell size, degrees of latitude and longitude.
const CELL_DEG: f64 = 2.0;
/// Rows (latitude bands) and columns (longitude bands).
const ROWS: usize = (180.0 / CELL_DEG) as usize;
const COLS: usize = (360.0 / CELL_DEG) as usize;
/// Earth radius the distances use, km (as [`distance_km`]).
const EARTH_KM: f64 = 6371.0;

/// Points bucketed by grid cell.
#[derive(Debug, Default)]
pub(crate) struct Grid {
    points: Vec<GeoPoint>,
    /// Indexes into `points`, by cell (`row * COLS + col`).
    cells: Vec<Vec<u32>>,
}

fn row_of(lat: f64) -> usize {
    (((lat + 90.0) / CELL_DEG) as usize).min(ROWS - 1)
}

fn col_of(lon: f64) -> usize {
    (((lon + 180.0).rem_euclid(360.0) / CELL_DEG) as usize).min(COLS - 1)
}

impl Grid {
    /// A grid over `points`; query answers are indexes into this order.
    pub(crate) fn new(points: Vec<GeoPoint>) -> Self {
        let mut cells = vec![Vec::new(); ROWS * COLS];
        for (i, p) in points.iter().enumerate() {
            cells[row_of(p.lat) * COLS + col_of(p.lon)].push(i as u32);
        }
        Self { points, cells }
    }

    /// Up to `k` points for which `accept` holds, nearest to `near` first,
    /// with their distances in km.
    pub(crate) fn nearest(
        &self,
        near: GeoPoint,
        k: usize,
        mut accept: impl FnMut(usize) -> bool,
    ) -> Vec<(f64, usize)> {
        let mut found: Vec<(f64, usize)> = Vec::new();
        if k == 0 || self.points.is_empty() {
            return found;
        }
        let (row, col) = (row_of(near.lat) as isize, col_of(near.lon) as isize);
        let mut visited = 0;
        // Scans cells `dcs` of row `dr` (offsets from the query's cell);
        // answers how many points they held.
        let mut scan = |dr: isize, dcs: std::ops::RangeInclusive<isize>, found: &mut Vec<_>| {
            let r = row + dr;
            if !(0..ROWS as isize).contains(&r) {
                return 0;
            }
            let mut seen = 0;
            for dc in dcs {
                let c = (col + dc).rem_euclid(COLS as isize) as usize;
                for &i in &self.cells[r as usize * COLS + c] {
                    seen += 1;
                    let i = i as usize;
                    if accept(i) {
                        found.push((distance_km(near, self.points[i]), i));
                    }
                }
            }
            seen
        };
        let half = COLS as isize / 2;
        let mut width = -1; // columns either side scanned so far
        for r in 0..=ROWS as isize {
            // Wider in longitude away from the equator, so the window stays
            // roughly square on the ground; `half` covers every column once.
            let reach = (near.lat.abs() + r as f64 * CELL_DEG).min(89.0).to_radians().cos();
            let w = ((r as f64 / reach).ceil() as isize).min(half);
            let (lo, hi) = (-w.min(half - 1), w);
            // New rows in full; old rows only in their new columns.
            for dr in [-r, r].into_iter().take(if r == 0 { 1 } else { 2 }) {
                visited += scan(dr, lo..=hi, &mut found);
            }
            for dr in -r + 1..r {
                if w > width {
                    visited += scan(dr, lo..=-width.min(half - 1) - 1, &mut found);
                    visited += scan(dr, width + 1..=hi, &mut found);
                }
            }
            width = w;
            if visited == self.points.len() {
                break;
            }
            if found.len() >= k {
                found.sort_by(|a, b| a.0.total_cmp(&b.0));
                if found[k - 1].0 <= lower_bound_km(near.lat, r, w, half) {
                    break;
                }
            }
        }
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        found.truncate(k);
        found
    }
}

/// The least distance from a point at latitude `lat` to any point in a cell
/// outside the window of `r` rows and `w` columns either side of its own.
fn lower_bound_km(lat: f64, r: isize, w: isize, half: isize) -> f64 {
    let gap = r as f64 * CELL_DEG;
    // Outside in latitude: at least `gap` degrees of latitude away.
    let by_lat = gap.to_radians() * EARTH_KM;
    if w >= half {
        return by_lat; // every column is inside the window
    }
    // Outside in longitude by at least `w` cells: either `gap` degrees of
    // latitude away after all, or no further poleward than `lat + gap`.
    let reach = (lat.abs() + gap).min(90.0).to_radians().cos();
    let dlon = (w as f64 * CELL_DEG).min(180.0).to_radians();
    let by_lon = 2.0 * EARTH_KM * (reach * (dlon / 2.0).sin()).min(1.0).asin();
    by_lat.min(by_lon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(points: &[GeoPoint], near: GeoPoint, k: usize, keep: &[bool]) -> Vec<f64> {
        let mut d: Vec<f64> = points
            .iter()
            .enumerate()
            .filter(|(i, _)| keep[*i])
            .map(|(_, p)| distance_km(near, *p))
            .collect();
        d.sort_by(f64::total_cmp);
        d.truncate(k);
        d
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (-90.0f64..=90.0, -180.0f64..180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
    }

    proptest! {
        #[test]
        fn finds_exactly_the_nearest_accepted_points(
            points in proptest::collection::vec(point(), 0..300),
            keep in proptest::collection::vec(any::<bool>(), 300),
            near in point(),
            k in 1usize..20,
        ) {
            let grid = Grid::new(points.clone());
            let got: Vec<f64> = grid.nearest(near, k, |i| keep[i]).into_iter().map(|(d, _)| d).collect();
            prop_assert_eq!(got, brute(&points, near, k, &keep));
        }
    }

    #[test]
    fn crosses_the_antimeridian_and_reaches_the_poles() {
        let points = vec![
            GeoPoint { lat: 0.0, lon: 179.9 },
            GeoPoint { lat: 0.0, lon: 170.0 },
            GeoPoint { lat: 89.9, lon: 0.0 },
        ];
        let grid = Grid::new(points);
        let near = GeoPoint { lat: 0.0, lon: -179.9 };
        let ids: Vec<usize> = grid.nearest(near, 3, |_| true).into_iter().map(|(_, i)| i).collect();
        assert_eq!(ids, [0, 1, 2]);
        let polar = GeoPoint { lat: 89.0, lon: 100.0 };
        assert_eq!(grid.nearest(polar, 1, |_| true)[0].1, 2);
    }
}
