//! The block index: trace-id range and row count of every row group.

use crate::model::TraceId;

const MAGIC: &[u8; 8] = b"TFINDEX1";

/// One row group's trace-id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupRange {
    pub min: TraceId,
    pub max: TraceId,
    pub rows: u32,
}

/// Row-group ranges in file order (ascending, since rows are sorted by trace id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIndex {
    pub groups: Vec<RowGroupRange>,
}

impl TraceIndex {
    /// Row groups that may hold `id`.
    pub fn candidates(&self, id: &TraceId) -> Vec<usize> {
        let first = self.groups.partition_point(|g| g.max < *id);
        (first..self.groups.len()).take_while(|&i| self.groups[i].min <= *id).collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.groups.len() * 36);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for g in &self.groups {
            out.extend_from_slice(&g.min);
            out.extend_from_slice(&g.max);
            out.extend_from_slice(&g.rows.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<TraceIndex, String> {
        if b.len() < 12 || &b[..8] != MAGIC {
            return Err("bad index header".into());
        }
        let n = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        if b.len() != 12 + n * 36 {
            return Err("bad index size".into());
        }
        let groups = b[12..]
            .chunks_exact(36)
            .map(|c| RowGroupRange {
                min: c[..16].try_into().unwrap(),
                max: c[16..32].try_into().unwrap(),
                rows: u32::from_le_bytes(c[32..].try_into().unwrap()),
            })
            .collect::<Vec<_>>();
        if groups.windows(2).any(|w| w[0].min > w[1].min) || groups.iter().any(|g| g.min > g.max) {
            return Err("index ranges out of order".into());
        }
        Ok(TraceIndex { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TraceId {
        [n; 16]
    }

    #[test]
    fn candidates_include_straddling_groups() {
        let idx = TraceIndex {
            groups: vec![
                RowGroupRange { min: id(1), max: id(3), rows: 10 },
                RowGroupRange { min: id(3), max: id(5), rows: 10 },
                RowGroupRange { min: id(7), max: id(9), rows: 10 },
            ],
        };
        assert_eq!(idx.candidates(&id(3)), vec![0, 1]);
        assert_eq!(idx.candidates(&id(4)), vec![1]);
        assert!(idx.candidates(&id(6)).is_empty());
        assert!(idx.candidates(&id(0)).is_empty());
        assert!(idx.candidates(&id(10)).is_empty());
        assert_eq!(TraceIndex::decode(&idx.encode()).unwrap(), idx);
        assert!(TraceIndex::decode(&idx.encode()[..20]).is_err());
    }
}
