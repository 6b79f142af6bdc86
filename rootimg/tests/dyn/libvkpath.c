/* libvkpath — found only through LD_LIBRARY_PATH: h_dynprobe dlopen()s it by bare name, which
 * works unless the dynamic linker runs in secure mode (AT_SECURE) and ignores that variable. */
int vkpath_here(void)
{
    return 1;
}
