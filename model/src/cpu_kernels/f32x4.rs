//! Four f32 lanes: wasm SIMD (`v128`) in the browser, plain arrays elsewhere (so native tests run
//! the same kernels, lane for lane, that the browser does).

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct F32x4(v128);

    impl F32x4 {
        #[inline(always)]
        pub fn zero() -> Self {
            Self(f32x4_splat(0.0))
        }
        /// # Safety
        /// `p` points at four readable f32s.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { v128_load(p as *const v128) })
        }
        /// # Safety
        /// `p` points at a readable f32.
        #[inline(always)]
        pub unsafe fn splat_load(p: *const f32) -> Self {
            Self(unsafe { v128_load32_splat(p as *const u32) })
        }
        /// # Safety
        /// `p` points at four writable f32s.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        /// `self + a·b`, rounded twice (wasm SIMD has no fused multiply-add).
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    #[derive(Clone, Copy)]
    pub struct F32x4([f32; 4]);

    impl F32x4 {
        #[inline(always)]
        pub fn zero() -> Self {
            Self([0.0; 4])
        }
        /// # Safety
        /// `p` points at four readable f32s.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { (p as *const [f32; 4]).read_unaligned() })
        }
        /// # Safety
        /// `p` points at a readable f32.
        #[inline(always)]
        pub unsafe fn splat_load(p: *const f32) -> Self {
            Self([unsafe { *p }; 4])
        }
        /// # Safety
        /// `p` points at four writable f32s.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { (p as *mut [f32; 4]).write_unaligned(self.0) }
        }
        /// `self + a·b`, rounded twice, as in the browser.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }
    }
}

pub use imp::F32x4;
