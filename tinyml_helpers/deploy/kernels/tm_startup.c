/* Minimal Cortex-M4 startup for the course firmware (written for this course): a vector
 * table, a reset handler that copies .data from flash, zeroes .bss and enables the FPU,
 * then idles (the emulator also switches the FPU on through its own registers). The host (the emulator runner) calls tm_model_run() directly for each
 * inference and stops when it returns into tm_done(). No OS, no libc. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void);
void tm_done(void);
void tm_idle(void);

__attribute__((noinline)) void tm_done(void) { __asm volatile("nop"); }
__attribute__((noinline)) void tm_idle(void) { for (;;) __asm volatile("wfi"); }

static void Default_Handler(void) { for (;;) {} }

__attribute__((section(".isr_vector"), used)) const void *const tm_vectors[16] = {
    (const void *)&_estack, (const void *)Reset_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler,  /* NMI, HardFault */
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    0, 0, 0, 0,
    (const void *)Default_Handler, (const void *)Default_Handler, 0,
    (const void *)Default_Handler, (const void *)Default_Handler,  /* PendSV, SysTick */
};

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU), as the hard-float ABI expects. */
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);
#endif
    tm_idle();
}
