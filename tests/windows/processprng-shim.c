/* Test-only, never shipped: Wine 8.0 (Debian 12) has no ProcessPrng in
 * bcryptprimitives.dll, which every Windows program built by Rust >= 1.78 imports for its
 * random numbers, so such a program does not even load. Placed beside the .exe under test,
 * this DLL of the same name provides it from RtlGenRandom (advapi32's SystemFunction036).
 * Built by tests/windows/wine-test.sh with mingw-w64. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
