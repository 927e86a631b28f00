//! GPU buffer limits: a tensor larger than the device's largest buffer cannot be uploaded, and
//! WebGPU would fail deep inside the runtime. Checked from the safetensors header, before upload.

/// The first tensor in `safetensors` whose f32 size (weights live as f32 on the device, whatever
/// their dtype in the file) exceeds `limit` bytes: its name and size.
pub fn oversized_tensor(safetensors: &[u8], limit: u64) -> Option<(String, u64)> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(safetensors).ok()?;
    let mut tensors: Vec<(String, u64)> = meta
        .tensors()
        .into_iter()
        .map(|(k, info)| (k, info.shape.iter().product::<usize>() as u64 * 4))
        .filter(|(_, need)| *need > limit)
        .collect();
    tensors.sort();
    tensors.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{serialize, Dtype, TensorView};

    #[test]
    fn finds_tensors_over_the_limit_by_their_f32_size() {
        let big = vec![0u8; 2 * 100 * 64]; // f16 [100, 64]: 12_800 bytes as f16, 25_600 as f32
        let small = vec![0u8; 4 * 8];
        let file = serialize(
            [
                (
                    "wte.weight",
                    TensorView::new(Dtype::F16, vec![100, 64], &big).unwrap(),
                ),
                (
                    "ln_f.bias",
                    TensorView::new(Dtype::F32, vec![8], &small).unwrap(),
                ),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            oversized_tensor(&file, 20_000),
            Some(("wte.weight".to_string(), 25_600))
        );
        assert_eq!(oversized_tensor(&file, 25_600), None);
        assert_eq!(oversized_tensor(b"<html>", 1), None);
    }
}
