/* The header compiles on its own and the error functions link. */
#include <uniloop.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    if (uniloop_last_error() != UNILOOP_OK) return 1;
    if (strcmp(uniloop_strerror(UNILOOP_ERR_INVALID), "invalid argument") != 0) return 1;
    if (uniloop_last_error_message() == NULL) return 1;
    puts("smoke: ok");
    return 0;
}
