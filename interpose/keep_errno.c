/* keep_errno.c: jemalloc's system calls leave errno alone, so that free()
 * can be a bare tail call into jemalloc and still keep errno.
 *
 * free() keeps errno: glibc promises it since 2.33, and programs rely on
 * it.  jemalloc's free makes system calls only on its slow paths -- a
 * purge of dirty pages (madvise), an unmap, a decommit (mmap over the
 * range), a protection change -- and a failed one sets errno.  Saving and
 * restoring errno around every free costs the entry point a frame and a
 * call that is not a tail call: 13 more instructions per malloc/free pair,
 * paid by every free for a failure that almost never happens.
 *
 * So transient_bind points jemalloc's own references to the four calls its
 * deallocation can make -- madvise, munmap, mmap and mprotect, the slots of
 * its global offset table that its calls go through -- at wrappers here,
 * which make the system call and put errno back.  Only jemalloc's calls
 * change: the program's, other libraries' and btd's own still go to glibc,
 * and an interposer of those calls (a tracing shim in LD_PRELOAD) no longer
 * sees jemalloc's.  jemalloc looks only at the return values of these
 * calls (its error messages before an abort excepted).  Where the slots
 * cannot be found or written (another architecture, a relocation format
 * not handled here), keep_errno_patch fails and transient_bind wraps
 * jemalloc's free in a save and restore instead.
 *
 * Exported wrappers that kept errno when the return address lay in
 * jemalloc were tried first: a shim in front of btd that forwarded
 * madvise with a call of its own hid the return address, and free changed
 * errno again.  Extent hooks before that: jemalloc 5.3's default merge
 * hook, called from a hook of ours, deadlocks on a lock its caller holds.
 *
 * tests/preload/free_errno.c makes jemalloc's purges fail (mlock'd pages)
 * along every path where its free makes system calls and checks errno
 * after each free, also with such a shim in front (madvise_shim.c). */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "transient.h"

static int keep_madvise(void *addr, size_t len, int advice)
{
	int saved = errno;
	long r = syscall(SYS_madvise, addr, len, advice);

	errno = saved;
	return (int)r;
}

static int keep_munmap(void *addr, size_t len)
{
	int saved = errno;
	long r = syscall(SYS_munmap, addr, len);

	errno = saved;
	return (int)r;
}

static int keep_mprotect(void *addr, size_t len, int prot)
{
	int saved = errno;
	long r = syscall(SYS_mprotect, addr, len, prot);

	errno = saved;
	return (int)r;
}

static void *keep_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int saved = errno;
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);

	errno = saved;
	return (void *)r;
}

static const struct {
	const char *name;
	void *fn;
} keep[] = {
	{ "madvise", (void *)keep_madvise },
	{ "munmap", (void *)keep_munmap },
	{ "mprotect", (void *)keep_mprotect },
	{ "mmap", (void *)keep_mmap },
	{ "mmap64", (void *)keep_mmap }, /* the same call on 64-bit targets */
};

/* The two relocations through which a shared object calls a function of
 * another: a PLT slot, and (-fno-plt) a GOT entry.  64-bit targets only. */
#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define R_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB R_AARCH64_GLOB_DAT
#endif
#define REL_TYPE ELF64_R_TYPE
#define REL_SYM ELF64_R_SYM

struct patch {
	uintptr_t addr;      /* an address in jemalloc's code */
	int found;           /* the object holding it was seen */
	unsigned patched;    /* slots written */
	int failed;
};

#ifdef R_SLOT
/* A dynamic-section address: ld.so relocates most in place, some
 * architectures leave them relative to the load address. */
static uintptr_t dyn_addr(const struct dl_phdr_info *info, ElfW(Addr) a)
{
	return a < info->dlpi_addr ? info->dlpi_addr + a : a;
}

/* Write fn into the slot, lifting RELRO's write protection around it when
 * the slot lies in the pages ld.so made read-only: those wholly inside
 * the RELRO range (its last partial page shares data and stays writable). */
static int write_slot(void **slot, void *fn, uintptr_t relro_lo, uintptr_t relro_hi)
{
	uintptr_t s = (uintptr_t)slot, page = (uintptr_t)sysconf(_SC_PAGESIZE);

	relro_lo &= ~(page - 1);
	relro_hi &= ~(page - 1);
	if (s - relro_lo < relro_hi - relro_lo) {
		void *lo = (void *)(s & ~(page - 1));

		if (mprotect(lo, page, PROT_READ | PROT_WRITE))
			return -1;
		__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
		mprotect(lo, page, PROT_READ);
		return 0;
	}
	__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
	return 0;
}

static void patch_relocs(const struct dl_phdr_info *info, const ElfW(Rela) *r, size_t bytes,
			 const ElfW(Sym) *symtab, const char *strtab, uintptr_t relro_lo,
			 uintptr_t relro_hi, struct patch *pt)
{
	for (size_t i = 0; i < bytes / sizeof(*r); i++) {
		unsigned long type = REL_TYPE(r[i].r_info);

		if (type != R_SLOT && type != R_GLOB)
			continue;
		const char *name = strtab + symtab[REL_SYM(r[i].r_info)].st_name;

		for (unsigned k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
			if (strcmp(name, keep[k].name))
				continue;
			void **slot = (void **)(info->dlpi_addr + r[i].r_offset);

			if (write_slot(slot, keep[k].fn, relro_lo, relro_hi))
				pt->failed = 1;
			else
				pt->patched++;
		}
	}
}
#endif

static int patch_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct patch *pt = arg;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0;
	int mine = 0;

	(void)size;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && pt->addr - lo < ph->p_memsz)
			mine = 1;
		else if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)lo;
		else if (ph->p_type == PT_GNU_RELRO)
			relro_lo = lo, relro_hi = lo + ph->p_memsz;
	}
	if (!mine)
		return 0;
	pt->found = 1;
#ifdef R_SLOT
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *jmprel = NULL, *rela = NULL;
	size_t jmprel_bytes = 0, rela_bytes = 0;
	long pltrel = DT_RELA;

	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: symtab = (const void *)dyn_addr(info, dyn->d_un.d_ptr); break;
		case DT_STRTAB: strtab = (const void *)dyn_addr(info, dyn->d_un.d_ptr); break;
		case DT_JMPREL: jmprel = (const void *)dyn_addr(info, dyn->d_un.d_ptr); break;
		case DT_PLTRELSZ: jmprel_bytes = dyn->d_un.d_val; break;
		case DT_PLTREL: pltrel = (long)dyn->d_un.d_val; break;
		case DT_RELA: rela = (const void *)dyn_addr(info, dyn->d_un.d_ptr); break;
		case DT_RELASZ: rela_bytes = dyn->d_un.d_val; break;
		default: break;
		}
	}
	if (!symtab || !strtab || pltrel != DT_RELA) {
		pt->failed = 1;
		return 1;
	}
	if (jmprel)
		patch_relocs(info, jmprel, jmprel_bytes, symtab, strtab, relro_lo, relro_hi, pt);
	if (rela)
		patch_relocs(info, rela, rela_bytes, symtab, strtab, relro_lo, relro_hi, pt);
#else
	(void)dyn;
	(void)relro_lo;
	(void)relro_hi;
	pt->failed = 1;
#endif
	return 1;
}

int keep_errno_patch(const void *jemalloc_code)
{
	struct patch pt = { (uintptr_t)jemalloc_code, 0, 0, 0 };

	dl_iterate_phdr(patch_object, &pt);
	return pt.found && !pt.failed && pt.patched ? 0 : -1;
}
