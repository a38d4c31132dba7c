/* The start run's floor (issue 19): the KVM calls microvm makes for the tiny
 * reset-at-once guest (`-M microvm -m 128m -nodefaults -kernel GUEST`, strace of
 * the musl build), in the same order, and nothing else: no devices, no threads, no
 * event loop, no sandbox. `cargo xtask bench` builds it with `cc -static` and runs it
 * alternately with microvm; microvm's CPU over this program's is the figure.
 *
 * usage: kvm-floor GUEST.elf   (a PVH ELF; exits 0 when the vCPU shuts down) */
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (128ul << 20)
#define TSS_ADDR 0xfffbd000ul
#define MAX_CPUID 256
#define XEN_ELFNOTE_PHYS32_ENTRY 18

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int kvm_ioctl(int fd, unsigned long req, void *arg, const char *what) {
    int rc = ioctl(fd, req, arg);
    if (rc < 0)
        die(what);
    return rc;
}

/* Copies the PT_LOAD segments into guest memory; returns the PVH entry point. */
static uint64_t load_pvh(const char *path, uint8_t *mem) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(path);
    static uint8_t file[1 << 20];
    ssize_t len = read(fd, file, sizeof(file));
    close(fd);
    if (len < (ssize_t)sizeof(Elf64_Ehdr))
        die("short ELF");
    Elf64_Ehdr *eh = (Elf64_Ehdr *)file;
    uint64_t entry = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr *ph = (Elf64_Phdr *)(file + eh->e_phoff + i * eh->e_phentsize);
        if (ph->p_type == PT_LOAD && ph->p_paddr + ph->p_memsz <= MEM_SIZE)
            memcpy(mem + ph->p_paddr, file + ph->p_offset, ph->p_filesz);
        if (ph->p_type != PT_NOTE)
            continue;
        for (uint64_t off = ph->p_offset; off + sizeof(Elf64_Nhdr) <= ph->p_offset + ph->p_filesz;) {
            Elf64_Nhdr *n = (Elf64_Nhdr *)(file + off);
            uint64_t desc = off + sizeof(*n) + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY)
                entry = *(uint32_t *)(file + desc);
            off = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    if (!entry)
        die("no PVH entry note");
    return entry;
}

static struct kvm_segment flat(uint16_t selector, uint8_t type) {
    return (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
        .present = 1, .s = 1, .db = 1, .g = 1,
    };
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
        return 2;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    kvm_ioctl(kvm, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
    int caps[] = {KVM_CAP_IRQCHIP, KVM_CAP_IRQFD, KVM_CAP_USER_MEMORY, KVM_CAP_SET_TSS_ADDR};
    for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        ioctl(kvm, KVM_CHECK_EXTENSION, caps[i]);
    int vm = kvm_ioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
    int run_size = kvm_ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");

    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap guest memory");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem,
    };
    kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
    ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR);
    kvm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = {0};
    kvm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
    uint64_t entry = load_pvh(argv[1], mem);

    static struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[MAX_CPUID];
    } cpuid = {.h.nent = MAX_CPUID};
    kvm_ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid, "KVM_GET_SUPPORTED_CPUID");
    ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER);
    int vcpu = kvm_ioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");
    ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ);
    ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    kvm_ioctl(vcpu, KVM_SET_CPUID2, &cpuid, "KVM_SET_CPUID2");

    /* microvm's boot MSRs: SYSENTER/SYSCALL zeroed, TSC, fast strings, WB MTRR default. */
    static const uint32_t zeroed[] = {0x174, 0x175, 0x176, 0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084, 0xc0000082, 0x10};
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[11];
    } msrs = {.h.nmsrs = 11};
    for (unsigned i = 0; i < 9; i++)
        msrs.e[i].index = zeroed[i];
    msrs.e[9] = (struct kvm_msr_entry){.index = 0x1a0, .data = 1};
    msrs.e[10] = (struct kvm_msr_entry){.index = 0x2ff, .data = 0x806};
    kvm_ioctl(vcpu, KVM_SET_MSRS, &msrs, "KVM_SET_MSRS");
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    kvm_ioctl(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
    struct kvm_lapic_state lapic;
    kvm_ioctl(vcpu, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
    /* LINT0 ExtINT, LINT1 NMI, as microvm (and firmware) set them. */
    uint32_t *lint0 = (uint32_t *)&lapic.regs[0x350], *lint1 = (uint32_t *)&lapic.regs[0x360];
    *lint0 = (*lint0 & ~0x700u) | (7u << 8);
    *lint1 = (*lint1 & ~0x700u) | (4u << 8);
    kvm_ioctl(vcpu, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
    struct kvm_sregs sregs;
    kvm_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    sregs.cs = flat(0x10, 11);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat(0x18, 3);
    sregs.cr0 = 0x11; /* PE | ET: PVH's 32-bit protected mode, no paging */
    sregs.cr4 = sregs.efer = 0;
    kvm_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = entry, .rflags = 2};
    kvm_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

    for (;;) {
        kvm_ioctl(vcpu, KVM_RUN, 0, "KVM_RUN");
        if (run->exit_reason == KVM_EXIT_SHUTDOWN)
            break;
        if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT)
            break;
        if (run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_MMIO) {
            fprintf(stderr, "kvm-floor: unexpected exit %u\n", run->exit_reason);
            return 1;
        }
    }
    /* Teardown as microvm's: vCPU, guest memory, then the VM. */
    munmap(run, run_size);
    close(vcpu);
    munmap(mem, MEM_SIZE);
    close(kvm);
    close(vm);
    return 0;
}
