/*
 * escapes.c - a POSIX guest (zvm-cc) trying to leave through the runtime.
 *
 *   escapes calls     every attempt below through libc; prints NAME=RESULT
 *                     lines (RESULT: ok, or the errno's name) and "done=1"
 *   escapes corrupt   scribbles over all of its own writable data (libc's and
 *                     the runtime's state included), then tries to open and
 *                     write host paths; any outcome but a fault or an error
 *                     is printed as "reached=1"
 *   escapes gs        asks the trampoline's set-fs gate's `syscall` for
 *                     ARCH_SET_GS instead: the filter must kill the guest
 *
 * The runtime is guest code: whatever it answers, the jail is the boundary.
 * These check that the answers are clear errnos and that nothing on the host
 * changes (the test compares the host files and the image before and after).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <zvm.h>

static const char *err(int e)
{
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case ENODEV: return "ENODEV";
    case EPERM: return "EPERM";
    case ECHILD: return "ECHILD";
    case ENOTDIR: return "ENOTDIR";
    default: return "other";
    }
}

static void say(const char *name, long r)
{
    printf("%s=%s\n", name, r < 0 ? err(errno) : "ok");
    fflush(stdout);
}

static void calls(void)
{
    say("open_shadow", open("/etc/shadow", O_RDONLY));
    say("open_passwd_write", open("/etc/passwd", O_WRONLY | O_TRUNC));
    say("open_proc_mem", open("/proc/self/mem", O_RDWR));
    say("open_dev_dotdot", open("/dev/../../etc/shadow", O_RDONLY));
    say("open_dev_mem", open("/dev/mem", O_RDONLY));
    /* Writing "over" an image file or the host's /tmp lands in the overlay. */
    int fd = open("/data/greeting.txt", O_WRONLY | O_TRUNC);
    say("write_image", fd < 0 ? -1 : write(fd, "overwritten\n", 12));
    fd = open("/tmp/zerolab-posix-escape", O_WRONLY | O_CREAT, 0644);
    say("write_tmp", fd < 0 ? -1 : write(fd, "x", 1));
    say("chdir_up", chdir("/../../.."));
    say("open_after_chdir_up", open("etc/shadow", O_RDONLY));
    say("fork", fork());
    char *argv[] = { "sh", NULL };
    say("execve", execve("/bin/sh", argv, argv + 1));
    say("socket", socket(AF_INET, SOCK_STREAM, 0));
    say("kill_init", kill(2, SIGKILL));
    say("wait", wait(NULL));
    say("mmap_exec", (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -1 ? -1 : 0);
    say("mmap_fixed_outside", (long)mmap((void *)0x10000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == -1 ? -1 : 0);
    say("munmap_trampoline", munmap((void *)0x10000, 4096));
    say("mprotect_exec", mprotect((void *)((uintptr_t)&calls & ~4095UL), 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    say("arch_prctl_gs", syscall(SYS_arch_prctl, 0x1001, 0x1000));
    say("ptrace", syscall(SYS_ptrace, 0, 0, 0, 0));
    /* The fs base, moved and moved back through the gate: only this guest's view changes. */
    static char other_tls[4096];
    void *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    long bad = zvm_set_fs((void *)0xffff800000000000UL); /* a kernel address: refused by the kernel */
    printf("set_fs_kernel=%s\n", bad < 0 ? "refused" : "ok");
    for (int i = 0; i < 1000; i++) {
        zvm_set_fs(other_tls);
        zvm_set_fs(tp);
    }
    say("set_fs_back_and_forth", 0);
    printf("done=1\n");
}

static void corrupt(void)
{
    /* Everything writable in the image, found through AT_PHDR: libc's FILE
     * structs, the runtime's descriptor table and file tree, malloc's state. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    size_t n = getauxval(AT_PHNUM);
    for (size_t i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_W)) {
            volatile char *p = (volatile char *)ph[i].p_vaddr, *end = p + ph[i].p_memsz;
            while (p < end)
                *p++ = (char)0xA5;
        }
    int fd = open("/etc/shadow", O_RDONLY);
    char buf[64];
    if (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        zvm_pwrite(1, "reached=1\n", 10, 0);
    fd = open("/tmp/zerolab-posix-corrupt", O_WRONLY | O_CREAT, 0644);
    zvm_pwrite(1, "survived=1\n", 11, 0);
}

static void set_gs(void)
{
    /* The set-fs gate is: mov %rdi,%rsi; mov $0x1002,%edi; mov $158,%eax;
     * syscall; ret. Jump straight to its `syscall` with edi = ARCH_SET_GS. */
    const unsigned char *gate = (const unsigned char *)ZVM_GATE(ZVM_GATE_SET_FS);
    int off = 0;
    while (off < 32 && !(gate[off] == 0x0f && gate[off + 1] == 0x05))
        off++;
    printf("started=1\n");
    fflush(stdout);
    long ret;
    __asm__ volatile("call *%%rcx"
                     : "=a"(ret)
                     : "a"(158L), "D"(0x1001L), "S"(0x1000L), "c"(gate + off)
                     : "rdx", "r8", "r9", "r10", "r11", "memory");
    printf("reached=1 ret=%ld\n", ret);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "calls"))
        calls();
    else if (argc > 1 && !strcmp(argv[1], "corrupt"))
        corrupt();
    else if (argc > 1 && !strcmp(argv[1], "gs"))
        set_gs();
    else
        return 2;
    return 0;
}
