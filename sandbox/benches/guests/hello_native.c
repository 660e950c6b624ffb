/* hello_native.c - the native comparison for the start-up benchmark: a
 * static glibc program writing the same 14 bytes as examples/hello.c. */
#include <unistd.h>
int main(void)
{
    return write(1, "Hello, World!\n", 14) == 14 ? 0 : 1;
}
