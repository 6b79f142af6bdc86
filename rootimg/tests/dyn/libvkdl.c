/* libvkdl — opened by t_dyn with dlopen(3): a constructor, a function, and a thread-local
 * variable in a shared object loaded after start-up (dynamic TLS, __tls_get_addr). */
int vkdl_ctor_ran;
__thread int vkdl_tls = 5;

__attribute__((constructor)) static void vkdl_init(void)
{
    vkdl_ctor_ran = 1;
}

int vkdl_answer(void)
{
    return 42;
}

/* This thread's copy, incremented. */
int vkdl_tls_bump(void)
{
    return ++vkdl_tls;
}
