/* libvktls — linked into t_dyn at build time (DT_NEEDED, found through $ORIGIN/lib): a
 * thread-local variable in a shared object loaded at start-up (static TLS). */
__thread int vktls_var = 99;

int *vktls_addr(void)
{
    return &vktls_var;
}
