/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust test
 * executables under Wine 8.0 (which lacks the DLL).
 *
 * Since Rust 1.78 the Windows standard library imports ProcessPrng from
 * bcryptprimitives.dll; without it every executable fails to start. This
 * exports that one function and fills the buffer with RtlGenRandom
 * (advapi32's SystemFunction036), which Wine does have.
 *
 * Built by scripts/test-windows.sh; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE buf, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(buf, chunk))
            return FALSE;
        buf += chunk;
        len -= chunk;
    }
    return TRUE;
}
